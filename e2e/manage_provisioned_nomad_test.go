package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/nimbus-fn/nimbus/internal/nomadtest"
	"github.com/nimbus-fn/nimbus/internal/testfn"
	"github.com/nimbus-fn/nimbus/jobs"
)

// TestProvisionedConcurrencyOnNomad puts a provisioned concurrency config
// on a published version through the real `nimbus gateway` in cluster mode
// (real Consul, real Nomad agent running the nimbus driver; no autoscaler):
// the gateway registers the version's job again with the provisioned
// group's floor, Nomad runs that allocation, the config's status goes from
// IN_PROGRESS to READY as the allocation runs and passes its health check,
// the version's running on-demand instance is left alone (only the
// provisioned group's count and scaling change), invocations of the
// version reach the provisioned instance, and deleting the config drops
// the floor to 0 and Nomad stops the instance.
func TestProvisionedConcurrencyOnNomad(t *testing.T) {
	nomadtest.Binary(t, "NOMAD_BINARY is not set: skipping provisioned concurrency against a real Nomad agent (set it to a nomad binary to run it)")
	lc, nc := startClusterOnNomad(t)
	ctx := context.Background()

	if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("pc"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Role: aws.String("r"),
		Code: &types.FunctionCode{ZipFile: zipDir(t, testfn.Dir(t, "ctxcheck"))}, Publish: true,
	}); err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	if err := lambda.NewFunctionActiveV2Waiter(lc).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("pc")}, 2*time.Minute); err != nil {
		t.Fatalf("waiting for Active: %v", err)
	}
	jobID := jobs.JobID("pc", "1")
	provisionedCount := func() int {
		j, _, err := nc.Jobs().Info(jobID, nil)
		if err != nil {
			return -1
		}
		for _, g := range j.TaskGroups {
			if *g.Name == jobs.GroupProvisioned && g.Count != nil {
				return *g.Count
			}
		}
		return -1
	}
	eventually(t, time.Minute, func() bool { return provisionedCount() == 0 }, "the gateway to register version 1's job without a floor")
	runningAllocs := func(group string) map[string]bool {
		allocs, _, err := nc.Jobs().Allocations(jobID, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, a := range allocs {
			// Running and meant to keep running (a replaced allocation is
			// told to stop as soon as the scheduler plans its successor).
			if a.TaskGroup == group && a.ClientStatus == nomadapi.AllocClientStatusRunning && a.DesiredStatus == nomadapi.AllocDesiredStatusRun {
				out[a.ID] = true
			}
		}
		return out
	}
	// An on-demand instance of version 1 serves before the config.
	if r := invokeReport(t, lc, "pc", "1"); r.Env["AWS_LAMBDA_INITIALIZATION_TYPE"] != "on-demand" {
		t.Fatalf("pc:1 before the config ran with init type %q", r.Env["AWS_LAMBDA_INITIALIZATION_TYPE"])
	}
	// The gateway routes to an instance as soon as it answers, which can
	// be before the Nomad client has reported the allocation running.
	var onDemand map[string]bool
	eventually(t, 30*time.Second, func() bool {
		onDemand = runningAllocs(jobs.GroupOnDemand)
		return len(onDemand) == 1
	}, "Nomad to report the one on-demand allocation that answered running")

	started := time.Now()
	out, err := lc.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{
		FunctionName: aws.String("pc"), Qualifier: aws.String("1"), ProvisionedConcurrentExecutions: aws.Int32(1)})
	if err != nil {
		t.Fatalf("PutProvisionedConcurrencyConfig: %v", err)
	}
	if out.Status != types.ProvisionedConcurrencyStatusEnumInProgress || aws.ToInt32(out.RequestedProvisionedConcurrentExecutions) != 1 {
		t.Fatalf("PutProvisionedConcurrencyConfig: %s %d", out.Status, aws.ToInt32(out.RequestedProvisionedConcurrentExecutions))
	}
	eventually(t, time.Minute, func() bool { return provisionedCount() == 1 }, "version 1's job to carry a provisioned floor of 1")
	sawInProgress := false
	eventually(t, 2*time.Minute, func() bool {
		got, err := lc.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("pc"), Qualifier: aws.String("1")})
		if err != nil {
			t.Fatalf("GetProvisionedConcurrencyConfig: %v", err)
		}
		switch got.Status {
		case types.ProvisionedConcurrencyStatusEnumFailed:
			t.Fatalf("provisioned config FAILED: %s", aws.ToString(got.StatusReason))
		case types.ProvisionedConcurrencyStatusEnumInProgress:
			sawInProgress = true
		}
		return got.Status == types.ProvisionedConcurrencyStatusEnumReady && aws.ToInt32(got.AvailableProvisionedConcurrentExecutions) == 1
	}, "the provisioned config to reach READY")
	t.Logf("PutProvisionedConcurrencyConfig to READY on Nomad: %s (IN_PROGRESS seen: %v)", time.Since(started).Round(time.Millisecond), sawInProgress)

	// READY is what Nomad runs: a running allocation of the provisioned
	// group; the on-demand instance was left running (raising the floor
	// replaces nothing).
	if running := runningAllocs(jobs.GroupProvisioned); len(running) != 1 {
		t.Fatalf("%d running provisioned allocations of %s, want 1", len(running), jobID)
	}
	for id := range onDemand {
		if !runningAllocs(jobs.GroupOnDemand)[id] {
			t.Fatalf("the on-demand allocation %s was replaced when the floor was raised", id)
		}
	}
	list, err := lc.ListProvisionedConcurrencyConfigs(ctx, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String("pc")})
	if err != nil || len(list.ProvisionedConcurrencyConfigs) != 1 || list.ProvisionedConcurrencyConfigs[0].Status != types.ProvisionedConcurrencyStatusEnumReady {
		t.Fatalf("ListProvisionedConcurrencyConfigs: %v %+v", err, list)
	}
	// The gateway routes to the provisioned instance first once its
	// router's next discovery round has it.
	eventually(t, 30*time.Second, func() bool {
		r := invokeReport(t, lc, "pc", "1")
		return r.FunctionVersion == "1" && r.Env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
	}, "invocations of pc:1 to reach the provisioned instance")

	// Delete: the floor goes back to 0 and Nomad stops the instance.
	if _, err := lc.DeleteProvisionedConcurrencyConfig(ctx, &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: aws.String("pc"), Qualifier: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, func() bool { return provisionedCount() == 0 }, "version 1's job to drop its provisioned floor")
	eventually(t, time.Minute, func() bool { return len(runningAllocs(jobs.GroupProvisioned)) == 0 }, "Nomad to stop the provisioned allocation")

	if _, err := lc.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("pc")}); err != nil {
		t.Fatal(err)
	}
}
