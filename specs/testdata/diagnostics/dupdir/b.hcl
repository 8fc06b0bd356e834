function "api" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
}
