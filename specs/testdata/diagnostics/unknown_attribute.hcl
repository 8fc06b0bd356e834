function "hello" {
  runtime = "provided.al2023"
  memory  = 256
  code {
    dir = "."
  }
}
