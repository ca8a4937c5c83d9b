"""HTTP routers of the call-center API, mounted by `callcenter_api.app.create_app`."""
