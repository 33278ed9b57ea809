// Command chatgate serves every chat surface of the gateway over one
// embedded store. `chatgate` (or `chatgate serve`) runs the server; see
// README.md for flags, configuration and protocols.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, os.Getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // asked for help: usage printed, exit 0
		}
		fmt.Fprintln(os.Stderr, "chatgate:", err)
		os.Exit(1)
	}
}

// run parses the command line and runs the chosen action until ctx ends.
func run(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	action := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		action, args = args[0], args[1:]
	}
	switch action {
	case "serve":
		opts, err := parseServeFlags(args, stderr)
		if err != nil {
			return err
		}
		opts.Stderr, opts.Getenv = stderr, getenv
		return serve(ctx, opts)
	case "bench":
		return runBenchCommand(ctx, args, stderr)
	case "export":
		return runExport(ctx, args, os.Stdout, stderr, getenv)
	case "import":
		return runImport(ctx, args, os.Stdin, os.Stdout, stderr, getenv)
	case "backfill":
		return runBackfill(ctx, args, os.Stdout, stderr, getenv)
	default:
		return fmt.Errorf("unknown action %q (known: serve, bench, export, import, backfill)", action)
	}
}

func parseServeFlags(args []string, stderr io.Writer) (serveOptions, error) {
	var o serveOptions
	fs := flag.NewFlagSet("chatgate serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.ConfigPath, "config", "", "YAML config file (default: the embedded configs/chatgate.example.yaml)")
	fs.StringVar(&o.DataPath, "data", "", "bbolt data file (overrides store.path and CHATGATE_DATA)")
	fs.StringVar(&o.Addr, "addr", "", "listen address (overrides server.addr and CHATGATE_ADDR)")
	fs.StringVar(&o.StoreURL, "store", "", "PostgreSQL URL postgres://... (overrides store.url and CHATGATE_STORE); empty: the bbolt file")
	fs.StringVar(&o.NodeID, "node-id", "", "this node's name in logs, metrics and /readyz (default: CHATGATE_NODE_ID, else host name and a random suffix)")
	fs.BoolVar(&o.Demo, "demo", false, "with no agents configured, create the demo agent even when not listening on loopback")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: chatgate [serve] [flags]\n       chatgate bench [flags]\n\n"+
			"Serves every chat surface, the agent console (/console) and the demo page (/demo).\n"+
			"Configuration: configs/chatgate.example.yaml, CHATGATE_* environment variables; see docs/console.md.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return o, nil
}
