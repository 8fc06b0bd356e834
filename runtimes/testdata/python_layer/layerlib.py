def where():
    return "from layer"
