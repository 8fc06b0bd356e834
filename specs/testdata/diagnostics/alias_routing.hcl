function "api" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
  alias "live" {
    version = 3
    routing {
      version = 4
      weight  = 1.5
    }
  }
  alias "canary" {
    version = 5
    routing {
      version = 5
      weight  = 0.2
    }
  }
  alias "split" {
    version = 6
    routing {
      version = 7
      weight  = 0.6
    }
    routing {
      version = 8
      weight  = 0.6
    }
  }
  alias "12" {
    version = "latest"
  }
}
