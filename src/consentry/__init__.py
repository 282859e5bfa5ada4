"""consentry: decide which user-generated content may train AI models, and prove it.

The library is the product; the CLI and the web app are thin faces over it.
"""

__version__ = "0.1.0"
