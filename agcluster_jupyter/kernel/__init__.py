"""What runs in a notebook's kernel: the ``%%agent`` magics, the REST client, the widgets,
``--with`` data files and the in-process server for a plain IPython.  Nothing of the
Jupyter server imports it."""
