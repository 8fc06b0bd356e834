function "hello" {
  runtime = "python3.12"
  handler = "app.handler"
}
