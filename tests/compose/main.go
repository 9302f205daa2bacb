// compose-check loads a Compose file the way Docker Compose v2 does, with the Compose
// specification's own Go implementation (github.com/compose-spec/compose-go): schema
// validation, interpolation of ${VAR} from an env file, references between services,
// networks and volumes. It prints the resolved project as JSON for the tests to read,
// or the loader's error and exit status 1.
//
//	compose-check docker-compose.yml sample.env > project.json
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: compose-check COMPOSE_FILE ENV_FILE")
		os.Exit(2)
	}
	file, envFile := os.Args[1], os.Args[2]
	options, err := cli.NewProjectOptions(
		[]string{file},
		cli.WithName("lakehouse"),
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := project.MarshalJSON()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}
