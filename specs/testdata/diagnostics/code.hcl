function "api" {
  runtime = "provided.al2023"
  code {
    dir = "."
    zip = "api.zip"
  }
}

layer "tools" {
  code {
    url = "https://example.com/tools.zip"
  }
}

layer "more" {
  code {
    url      = "https://example.com/more.zip"
    checksum = "md5:abc"
  }
}
