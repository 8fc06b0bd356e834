package jobs

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/driver/invokeapi"
	"github.com/nimbus-fn/nimbus/driver/taskconfig"
)

// The invoke secret never travels in the job. Each job has its own Nomad
// Variable at VariablePath(job ID), which workload identity lets the
// job's tasks read with no extra ACL policy; a template renders the item
// VariableInvokeSecret into InvokeSecretFile in the task's secrets dir
// before the task starts, and the driver reads it from there.
const (
	// VariableInvokeSecret is the item of the job's variable that holds the
	// invoke secret.
	VariableInvokeSecret = "invoke_secret"
	// InvokeSecretFile is where the template renders the invoke secret,
	// relative to the task directory.
	InvokeSecretFile = "secrets/nimbus-invoke-secret"
)

// VariablePath is the Nomad Variable a job's tasks may read by default:
// "nomad/jobs/<job id>".
func VariablePath(jobID string) string {
	return "nomad/jobs/" + jobID
}

// ReadsInvokeSecret reports whether job's function tasks read an invoke
// secret. A job compiled with Options.Connect does not: its instances
// accept the gateway by its mesh certificate and Consul's intentions, so
// it has no secret template and needs no Variable.
func ReadsInvokeSecret(job *api.Job) bool {
	if job == nil {
		return false
	}
	for _, g := range job.TaskGroups {
		for _, t := range g.Tasks {
			if t == nil || t.Driver != taskconfig.DriverName {
				continue
			}
			if s, _ := t.Config[taskconfig.AttrConnectService].(string); s == "" {
				return true
			}
		}
	}
	return false
}

// InvokeVariable is the Nomad Variable a compiled job needs before it can
// start: VariablePath of its ID, in its namespace, with the invoke secret
// derived from the cluster key for the function and version in its meta.
// A Connect-native job (ReadsInvokeSecret false) needs none: the answer is
// nil, nil, and nothing is derived or written for it. It is pure, like
// Compile.
func InvokeVariable(job *api.Job, key []byte) (*api.Variable, error) {
	if job == nil || job.ID == nil || *job.ID == "" {
		return nil, fmt.Errorf("%w: job has no ID", ErrInvalid)
	}
	if !ReadsInvokeSecret(job) {
		return nil, nil
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: job %s: secret key is required", ErrInvalid, *job.ID)
	}
	fn, version := job.Meta[MetaFunction], job.Meta[MetaVersion]
	if fn == "" || version == "" {
		return nil, fmt.Errorf("%w: job %s: meta names no function and version", ErrInvalid, *job.ID)
	}
	ns := ""
	if job.Namespace != nil {
		ns = *job.Namespace
	}
	return &api.Variable{
		Namespace: ns,
		Path:      VariablePath(*job.ID),
		Items:     api.VariableItems{VariableInvokeSecret: invokeapi.DeriveSecret(key, fn, version)},
	}, nil
}

// VarPutCommand is the `nomad var put` command line that creates v, for
// users who run a rendered job with plain `nomad job run`. It holds the
// secret in clear: print it only when asked.
func VarPutCommand(v *api.Variable) (string, error) {
	if v == nil || v.Path == "" {
		return "", errors.New("variable has no path")
	}
	cmd := "nomad var put"
	if v.Namespace != "" {
		cmd += " -namespace " + shellQuote(v.Namespace)
	}
	cmd += " " + shellQuote(v.Path)
	for _, k := range sortedKeys(v.Items) {
		cmd += " " + shellQuote(k+"="+v.Items[k])
	}
	return cmd, nil
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe
// characters.
func shellQuote(s string) string {
	safe := s != ""
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '/' || c == '.' || c == '=' || c == ':') {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func sortedKeys(m api.VariableItems) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// invokeSecretTemplate renders the invoke secret from the job's variable.
// Nomad runs templates in the task's prestart hook and holds the task until
// the variable exists; a new secret (key rotation) restarts the task, as
// the driver reads the file only at start.
func invokeSecretTemplate(jobID string) *api.Template {
	tmpl := fmt.Sprintf("{{ with nomadVar %q }}{{ .%s }}{{ end }}", VariablePath(jobID), VariableInvokeSecret)
	return &api.Template{
		EmbeddedTmpl: new(tmpl),
		DestPath:     new(InvokeSecretFile),
		ChangeMode:   new("restart"),
		Perms:        new("0400"),
	}
}
