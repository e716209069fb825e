print("syft-sandbox-run: not yet")
