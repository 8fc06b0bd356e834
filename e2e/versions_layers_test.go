package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// Layers through the real CLI (nimbus layer publish, nimbus publish) and
// real python3/node functions that import code only their layers hold.

const layersSpec = `layer "pyshared" {
  code {
    dir = "layers/py"
  }
  compatible_runtimes = ["python3.12"]
}

layer "override" {
  code {
    dir = "layers/override"
  }
}

layer "nodeshared" {
  code {
    dir = "layers/node"
  }
  compatible_runtimes = ["nodejs22.x"]
}

function "py" {
  runtime = "python3.12"
  handler = "app.handler"
  code {
    dir = "py"
  }
  layers = ["pyshared", "override"]
}

function "js" {
  runtime = "nodejs22.x"
  handler = "index.handler"
  code {
    dir = "js"
  }
  layers = ["nodeshared"]
}
`

var layerFiles = map[string]string{
	"nimbus.hcl": layersSpec,
	"py/app.py": `import os
import subprocess
import greet
import which

def handler(event, context):
    tool = subprocess.run(["layertool"], capture_output=True, text=True).stdout.strip()
    lib = ""
    for d in os.environ.get("LD_LIBRARY_PATH", "").split(":"):
        if d and os.path.exists(os.path.join(d, "libdata.txt")):
            lib = open(os.path.join(d, "libdata.txt")).read().strip()
    return {"msg": greet.hello(), "who": which.WHO, "tool": tool, "lib": lib}
`,
	"layers/py/lib/libdata.txt":       "from the layer's lib\n",
	"layers/py/python/greet.py":       "def hello():\n    return \"hello from the python layer\"\n",
	"layers/py/python/which.py":       "WHO = \"pyshared\"\n",
	"layers/override/python/which.py": "WHO = \"override\"\n",
	"js/index.js": `const greet = require("greet");
exports.handler = async () => ({ msg: greet.hello() });
`,
	"layers/node/nodejs/node_modules/greet/index.js": "exports.hello = () => \"hello from the node layer\";\n",
}

type layerReply struct {
	Msg  string `json:"msg"`
	Who  string `json:"who"`
	Tool string `json:"tool"`
	Lib  string `json:"lib"`
}

func invokeLayer(t *testing.T, c *lambda.Client, fn, qualifier string) layerReply {
	t.Helper()
	r, _ := invokeJSON[layerReply](t, c, fn, qualifier)
	return r
}

func TestLayersPythonAndNode(t *testing.T) {
	files := map[string]string{"layers/py/bin/layertool": "#!/bin/sh\necho layer tool\n"}
	for k, v := range layerFiles {
		files[k] = v
	}
	g := startVersionsGateway(t, files)
	c := g.lambda()

	if out, err := g.cli(t, "publish", "py"); err == nil || !strings.Contains(out, "layer pyshared has no published version") {
		t.Fatalf("publishing before the layers: %v %s", err, out)
	}
	// The tool must be executable inside the layer's bin/ (PATH).
	mustChmod(t, g.specDir+"/layers/py/bin/layertool")
	for _, l := range []string{"pyshared", "override", "nodeshared"} {
		if out := g.mustCLI(t, "layer", "publish", l); !strings.Contains(out, "published layer "+l+" version 1") {
			t.Fatal(out)
		}
	}
	for _, fn := range []string{"py", "js"} {
		if out := g.mustCLI(t, "publish", fn); !strings.Contains(out, "published "+fn+" version 1") {
			t.Fatal(out)
		}
	}
	g.awaitQualifier(t, "py", "1", true)
	g.awaitQualifier(t, "js", "1", true)

	want := layerReply{Msg: "hello from the python layer", Who: "override", Tool: "layer tool", Lib: "from the layer's lib"}
	if got := invokeLayer(t, c, "py", "1"); got != want {
		t.Fatalf("py:1 = %+v, want %+v (PYTHONPATH from the layers, the later layer winning, bin/ on PATH, lib/ on LD_LIBRARY_PATH)", got, want)
	}
	if got := invokeLayer(t, c, "js", "1"); got.Msg != "hello from the node layer" {
		t.Fatalf("js:1 = %+v (NODE_PATH from the layer)", got)
	}

	if got := invokeLayer(t, c, "py", ""); got.Msg != "hello from the python layer" {
		t.Fatalf("$LATEST = %+v", got)
	}
	// A new layer version reaches $LATEST (unpinned reference: newest; nimbus
	// dev replaces its running instance) but not the published version,
	// which pinned pyshared:1.
	writeTree(t, g.specDir, map[string]string{"layers/py/python/greet.py": "def hello():\n    return \"layer v2\"\n"})
	if out := g.mustCLI(t, "layer", "publish", "pyshared"); !strings.Contains(out, "published layer pyshared version 2") {
		t.Fatal(out)
	}
	if got := invokeLayer(t, c, "py", "1"); got.Msg != "hello from the python layer" {
		t.Fatalf("published version changed with a new layer version: %+v", got)
	}
	eventually(t, 20*time.Second, func() bool { return invokeLayer(t, c, "py", "").Msg == "layer v2" }, "$LATEST runs with pyshared:2")
	if got := invokeLayer(t, c, "py", ""); got.Who != "override" {
		t.Fatalf("$LATEST = %+v, want the override layer still last", got)
	}
	out := g.mustCLI(t, "layer", "versions", "pyshared")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[2], "2 ") {
		t.Fatalf("layer versions:\n%s", out)
	}
}
