"""The web page: Gradio tabs over the library's public API. `textrnn serve`, `python -m
textrnn.web` and the repository's `app.py` (a Hugging Face Space) all start `server.main`.

    server.py     the command line, the HTTP limits, launching
    page.py       the page: its tabs laid out, what a page load fills in
    request.py    a generation request, checked once where it enters (model, prompt, settings)
    messages.py   what a visitor is told: one escaped line, never a traceback
    catalog.py    the models offered: checkpoint folders, loaded on first use
    generate.py   the Generate tab, the /generate API and the stream both read
    train_tab.py  the Train tab, drawing the workbench's jobs
    workbench.py  visitors' training jobs: the line, stopping, the disk cap
    trainer.py    the child process that trains one job (`python -m textrnn.web.trainer`)
    inside.py     the Look inside tab and the /inspect and /find_units API
    compare.py    the Compare tab

Gradio is the `app` extra: `import textrnn` never loads this package, and nothing in the library
imports it.
"""
