"""Reading finished runs and batches: metrics as the papers define them, exports, and the HTML report."""
