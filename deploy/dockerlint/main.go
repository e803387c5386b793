// Command dockerlint checks Dockerfiles with BuildKit's own Dockerfile
// parser and build checks (the rules "docker build --check" runs at parse
// time: casing, JSON arguments, deprecated instructions, duplicate and
// reserved stage names, ...), without a Docker engine. It prints one line
// per problem and exits 1 if there are any.
//
// It is a module of its own so that BuildKit stays out of reel's: run it
// with "go run ./deploy/dockerlint Dockerfile" from this directory's
// parent's parent, or as the tests do (cmd/reel TestDockerfile).
package main

import (
	"fmt"
	"os"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dockerlint DOCKERFILE...")
		os.Exit(2)
	}
	problems := 0
	for _, name := range os.Args[1:] {
		problems += lint(name)
	}
	if problems > 0 {
		os.Exit(1)
	}
}

func lint(name string) int {
	f, err := os.Open(name)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		fmt.Printf("%s: %v\n", name, err)
		return 1
	}
	problems := 0
	for _, w := range res.Warnings {
		fmt.Printf("%s:%d: %s\n", name, w.Location.Start.Line, w.Short)
		problems++
	}
	lint := linter.New(&linter.Config{
		ExperimentalAll: true,
		Warn: func(rule, description, url, msg string, loc []parser.Range) {
			line := 0
			if len(loc) > 0 {
				line = loc[0].Start.Line
			}
			fmt.Printf("%s:%d: %s: %s\n", name, line, rule, msg)
			problems++
		},
	})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		fmt.Printf("%s: %v\n", name, err)
		return problems + 1
	}
	if len(stages) == 0 {
		fmt.Printf("%s: no build stage\n", name)
		problems++
	}
	return problems
}
