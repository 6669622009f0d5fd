"""Default configs of gold, train and train-span (package data; `init-config NAME FILE` writes a copy)."""
