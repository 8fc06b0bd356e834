function "twice" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
  build {
    command = "make"
  }
  build {
    skip = true
  }
}

function "typed" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
  build {
    command = ["go", "build"]
    skip    = "yes"
    args    = "-v"
  }
}
