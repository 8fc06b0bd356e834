function "hello" {
  runtime     = "provided.al2023"
  memory_mb   = "lots"
  timeout     = true
  environment = ["A=1"]
  code {
    dir = "."
  }
}
