function "api" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
  alias "live" {
    version = 1
  }
  alias "live" {
    version = 2
  }
  url {
  }
  url {
  }
}

function "api" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
}
