"""The notebook faces: the magics, the widget form and its cards, and running notebooks headless (make demo)."""
