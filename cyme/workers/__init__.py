"""Worker processes: what they run, how they are started, and how they are controlled."""
