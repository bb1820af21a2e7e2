"""Pictures as values and files: the GeneratedImage and ImageSet types, and where --out puts files."""
