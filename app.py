"""The web page, for `python app.py` and a Hugging Face Space (see the README's front matter).
The page itself is the `textrnn.web` package; `textrnn serve` starts the same one."""

from pathlib import Path

from textrnn.web.server import main

if __name__ == "__main__":
    main(home=Path(__file__).resolve().parent)
