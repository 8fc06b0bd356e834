function "api" {
  runtime = "provided.al2023"
  environment = {
    AWS_REGION = "us-east-1"
    DB_URL     = "postgres://db"
    "1BAD"     = "x"
  }
  code {
    dir = "."
  }
  secret "DB_URL" {
    path = "/nimbus/db/"
    key  = "url"
  }
}
