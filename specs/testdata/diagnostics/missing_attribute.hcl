function "hello" {
  handler = "app.handler"
  code {
    dir = "."
  }
}
