"""Charts: one plotly figure definition, PNG through the OS Chromium, and the render_chart step."""
