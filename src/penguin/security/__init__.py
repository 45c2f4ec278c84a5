"""Security: the shell sandbox (``sandbox``, ``cgroups``) and user regular expressions (``patterns``)."""
