"""Replay: a litellm custom provider that answers from a recorded JSONL file of prompts.

For deterministic tests and for re-running a past run's LLM traffic without a model. Each line
of the file is one recorded call:

    {"prompt": "...", "response": "...", "model": "openai/gpt-4o-mini", "seed": 123}

`prompt` is the call's messages' contents joined by a blank line (what llm_calls.prompt holds);
a line may give `messages` (a chat list) instead. `model` and `seed` are optional.

Matching is by the SHA-256 of the prompt text. When a prompt was recorded several times (the
seed program is prompted many times early in a run), a request whose `seed` equals a recorded
one gets that answer; otherwise the answers are handed out in file order, one per request,
and start again from the first once all have been used. A run of one island replays its
recorded answers exactly with the same seed and search settings, whatever order its requests
are sent in: each is matched by its prompt and seed, and the island applies its results in
step order (evolve/engine/ordering.py).

A prompt with no recording is handled by the model string's policy:

- `evolve-replay/strict` (the default): the request fails with an error naming the prompt's
  hash and the file; the engine records it in llm_calls and carries on.
- `evolve-replay/local`: the offline local mutator answers instead (a run that continues past
  its recording).

`export_replay(db_path, out_path)` writes a past run's llm_calls table as such a file.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import litellm
from litellm import CustomLLM
from litellm.types.utils import ModelResponse

PROVIDER = "evolve-replay"
STRICT = f"{PROVIDER}/strict"
FALLBACK_LOCAL = f"{PROVIDER}/local"
PROMPT_SEPARATOR = "\n\n"  # how the engine joins message contents into llm_calls.prompt


class ReplayError(ValueError):
    """A replay file that cannot be read."""


class NotRecorded(litellm.exceptions.NotFoundError):
    """A prompt the replay file has no answer for. A litellm error that the client does not
    retry (retrying cannot make a recording appear)."""

    def __init__(self, message: str, model: str) -> None:
        super().__init__(message=message, model=model, llm_provider=PROVIDER)


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """The prompt as recorded in llm_calls: message contents joined by a blank line."""
    return PROMPT_SEPARATOR.join(str(m.get("content", "")) for m in messages)


def prompt_hash(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


class Recording:
    """The answers of one replay file, indexed by prompt hash."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ReplayError(
                f"llm.replay_file={str(path)!r} does not exist; record one with "
                "`export_replay(db_path, out_path)` from a past run's evolve.db"
            )
        self.answers: dict[str, list[str]] = defaultdict(list)
        self.by_seed: dict[tuple[str, int], str] = {}
        self._next: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self.size = 0
        with self.path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    prompt = rec["prompt"] if "prompt" in rec else prompt_text(rec["messages"])
                    response = rec["response"]
                except (ValueError, KeyError, TypeError) as exc:
                    raise ReplayError(
                        f"{self.path}:{n}: not a replay record ({exc}); each line must be JSON "
                        'with "prompt" (or "messages") and "response"'
                    ) from None
                if not isinstance(response, str):
                    continue  # a recorded failure: nothing to replay
                h = prompt_hash(prompt)
                self.answers[h].append(response)
                if rec.get("seed") is not None:
                    self.by_seed.setdefault((h, int(rec["seed"])), response)
                self.size += 1

    def answer(self, prompt: str, seed: int | None = None) -> str | None:
        """The recorded answer for a prompt, or None if it was never recorded."""
        h = prompt_hash(prompt)
        if seed is not None and (h, int(seed)) in self.by_seed:
            return self.by_seed[(h, int(seed))]
        answers = self.answers.get(h)
        if not answers:
            return None
        with self._lock:
            i = self._next[h]
            self._next[h] = i + 1
        return answers[i % len(answers)]


class ReplayLLM(CustomLLM):
    """litellm custom provider `evolve-replay`: `evolve-replay/strict` or `evolve-replay/local`."""

    def __init__(self, recording: Recording) -> None:
        super().__init__()
        self.recording = recording

    def _answer(
        self, model: str, messages: list, optional_params: dict, model_response: ModelResponse
    ) -> ModelResponse:
        from evolve.mutation.local import mutate_prompt

        prompt = prompt_text(messages)
        seed = optional_params.get("seed")
        text = self.recording.answer(prompt, seed)
        if text is None:
            if model.endswith("local"):
                text = mutate_prompt("\n".join(str(m.get("content", "")) for m in messages), seed)
            else:
                raise NotRecorded(
                    f"replay: no recorded answer for prompt sha256:{prompt_hash(prompt)[:16]} in "
                    f"{self.recording.path} ({self.recording.size} records); use "
                    f"llm.model={FALLBACK_LOCAL} to let the local mutator answer unrecorded prompts",
                    model,
                )
        model_response.choices[0].message.content = text  # type: ignore[union-attr]
        model_response.model = model if "/" in model else f"{PROVIDER}/{model}"
        model_response.usage = litellm.Usage(  # type: ignore[attr-defined]
            prompt_tokens=len(prompt.split()),
            completion_tokens=len(text.split()),
            total_tokens=len(prompt.split()) + len(text.split()),
        )
        return model_response

    def completion(self, model, messages, api_base, custom_prompt_dict, model_response,
                   print_verbose, encoding, api_key, logging_obj, optional_params, *args, **kwargs):  # fmt: skip
        return self._answer(model, messages, optional_params or {}, model_response)

    async def acompletion(self, model, messages, api_base, custom_prompt_dict, model_response,
                          print_verbose, encoding, api_key, logging_obj, optional_params, *args, **kwargs):  # fmt: skip
        return self._answer(model, messages, optional_params or {}, model_response)


_registered: dict[str, Recording] = {}


def register(path: str | Path) -> Recording:
    """Serve answers from `path` as provider `evolve-replay` in this process (idempotent)."""
    key = str(Path(path).resolve())
    rec = _registered.get(key)
    if rec is None:
        rec = _registered[key] = Recording(path)
    entries = [e for e in (litellm.custom_provider_map or []) if e.get("provider") != PROVIDER]
    entries.append({"provider": PROVIDER, "custom_handler": ReplayLLM(rec)})
    litellm.custom_provider_map = entries
    return rec


def export_replay(db_path: str | Path, out_path: str | Path, run_id: str | None = None) -> int:
    """Write the answered llm_calls of a run database as a replay JSONL file, in call order.

    Calls that failed (no response) are skipped. Returns the number of records written."""
    db_path = Path(db_path)
    if not db_path.is_file():
        raise ReplayError(f"{db_path} does not exist; give a run's evolve.db")
    from evolve.population.database import Database, DatabaseError

    try:
        db = Database(db_path, readonly=True)
    except DatabaseError as exc:
        raise ReplayError(f"{db_path}: {exc}; is it an evolve run database?") from None
    try:
        rows = db.answered_calls(run_id)
    finally:
        db.close()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w", encoding="utf-8") as f:
        for row in rows:
            rec = {k: v for k, v in row.items() if v is not None or k == "response"}
            f.write(json.dumps(rec) + "\n")
    return len(rows)
