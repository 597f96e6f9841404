"""Scorer backends: SA and PC of a video (see ``roles.Scorer``). Keep this file import-free."""
