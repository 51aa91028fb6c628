"""What a visitor is told: one line, cut and escaped, never a traceback. A refusal goes to the
server's log as one line too."""

from __future__ import annotations

import html
import re
import sys

import gradio as gr

MAX_MESSAGE_CHARS = 300  # a message may quote what a visitor sent, which may be of any size


def said(message) -> str:
    """A message as the page and the log get it: on one line, without Markdown's code marks
    (the library's messages put commands in backticks; a toast would show them), cut to
    MAX_MESSAGE_CHARS, and HTML-escaped, since Gradio's toasts render HTML and a message may
    quote what a visitor sent."""
    message = " ".join(str(message).split())  # one line
    message = re.sub(r"`([^`\n]+)`", r"\1", message)  # Markdown's code marks: a toast shows them
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS - 1] + "…"
    return html.escape(message, quote=False)


def refuse(message) -> gr.Error:
    """A request turned away: one line in the server's log (no traceback), the message on the
    page."""
    message = said(message)
    print(f"textrnn app: refused: {message}", file=sys.stderr, flush=True)
    return gr.Error(message, print_exception=False)


def warn(message) -> str:
    """A warning on the page (a toast); returns it as shown, for a status line to repeat."""
    message = said(message)
    gr.Warning(message)
    return message
