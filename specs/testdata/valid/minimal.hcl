function "hello" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
}
