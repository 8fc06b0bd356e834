raise ValueError("init boom")
