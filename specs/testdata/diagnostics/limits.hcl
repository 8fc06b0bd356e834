function "hello" {
  runtime                   = "python3.12"
  handler                   = "app"
  memory_mb                 = 64
  timeout                   = "15m1s"
  ephemeral_storage_mb      = 20000
  environments_per_instance = 65
  network                   = "bridge"
  reserved_concurrency      = -1
  layers                    = ["a", "b", "c", "d", "e", "f"]
  code {
    dir = "."
  }
}

layer "a" {
  code {
    dir = "a"
  }
}
layer "b" {
  code {
    dir = "b"
  }
}
layer "c" {
  code {
    dir = "c"
  }
}
layer "d" {
  code {
    dir = "d"
  }
}
layer "e" {
  code {
    dir = "e"
  }
}
layer "f" {
  code {
    dir = "f"
  }
}
