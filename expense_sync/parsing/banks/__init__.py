"""One module per bank; each registers a BankParser on import (see parsing/registry.py).

Adding a bank (Banco Nacional, BCR) is adding a module here: the registry imports every
module of this package whose name does not start with an underscore.
"""
