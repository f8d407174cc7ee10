"""The Textual face of scaletui: screens over the same store the CLI reads."""
