function "api" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
  url {
    qualifier   = "prod"
    invoke_mode = "STREAM"
  }
  alias "live" {
    version = 1
  }
}
