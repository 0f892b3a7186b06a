"""Reports: the live console view, run summaries and leaderboards."""
