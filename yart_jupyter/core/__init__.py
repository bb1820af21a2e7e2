"""The foundations every layer reads: settings, requests, prompts, models, errors, provenance, status.

Pure data and validation: nothing here sends, stores or shows anything.
"""
