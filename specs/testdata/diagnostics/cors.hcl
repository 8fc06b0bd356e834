function "web" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
  url {
    auth = "none"
    cors {
      allow_origins     = ["*", "https://example.com/app"]
      allow_methods     = ["GET", "OPTIONS", "post"]
      allow_headers     = ["content type"]
      allow_credentials = true
      max_age           = 100000
    }
  }
}
