"""Teaching code beside the library, not part of it: run from the repository root.

    python -m lessons.reference    the textbook RNN in NumPy, hand-written BPTT, checked
    lessons/gradflow.py            exploding and vanishing gradients, measured

Both build on textrnn's model to compare against it; nothing in textrnn imports them.
"""
