"""The API clients: one interface (``client``) over the asynchronous-operations API and the Images API.

Both share one connection: transport, credentials, quotas and the read scheduler. No IPython here.
"""
