"""Mutation: prompts, the litellm client and ensemble, the offline local mutator."""
