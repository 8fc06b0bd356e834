function "zipped" {
  runtime = "provided.al2023"
  code {
    zip = "fn.zip"
  }
  build {
    command = "make"
  }
}

function "both" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
  build {
    command = "make"
    skip    = true
  }
}

function "empty" {
  runtime = "nodejs20.x"
  handler = "index.handler"
  code {
    dir = "."
  }
  build {
    output = "dist"
  }
}

function "escapes" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
  build {
    command = "make"
    output  = "../elsewhere"
  }
}
