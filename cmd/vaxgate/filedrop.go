package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/viper"
	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/ingest/file"
	"github.com/vaxgate/vaxgate/store"
)

// fileConfig is the drop-folder transport's configuration (key "file").
type fileConfig struct {
	// Root holds a folder per site, named by its site code; Sites lists sites with folders elsewhere.
	Root  string           `mapstructure:"root"`
	Sites []fileSiteConfig `mapstructure:"sites"`
	// Settle: a file without the .tmp/.done convention is taken once unmodified this long.
	Settle time.Duration `mapstructure:"settle"`
	Poll   time.Duration `mapstructure:"poll"`
	// MaxFileSize: larger files are refused into the error folder with a report.
	MaxFileSize    int64 `mapstructure:"max_file_size"`
	MaxMessageSize int   `mapstructure:"max_message_size"`
	Workers        int   `mapstructure:"workers"`
	// Window: messages of a file in the pipeline at once (keeps group commit full).
	Window int `mapstructure:"window"`
}

// fileSiteConfig is one site's folders: dir holds inbox, work, outbox, archive and error unless
// some are given apart.
type fileSiteConfig struct {
	Code    string `mapstructure:"code"`
	Dir     string `mapstructure:"dir"`
	Inbox   string `mapstructure:"inbox"`
	Work    string `mapstructure:"work"`
	Outbox  string `mapstructure:"outbox"`
	Archive string `mapstructure:"archive"`
	Error   string `mapstructure:"error"`
}

func setFileDefaults(v *viper.Viper) {
	v.SetDefault("file.root", "")
	v.SetDefault("file.sites", []map[string]string{})
	v.SetDefault("file.settle", 10*time.Second)
	v.SetDefault("file.poll", 2*time.Second)
	v.SetDefault("file.max_file_size", int64(1<<30))
	v.SetDefault("file.max_message_size", 4<<20)
	v.SetDefault("file.workers", 2)
	v.SetDefault("file.window", 2048)
}

// fileProcessOptions are the per-file options of the drop folders and of preload.
func fileProcessOptions(c *config) file.Options {
	return file.Options{MaxMessageSize: c.File.MaxMessageSize, Window: c.File.Window}
}

// startFileDrop starts the drop-folder service when file.root or file.sites is configured. The
// returned function stops it and waits until every file being processed is checkpointed (every
// message started is answered): call it before closing the writer.
func startFileDrop(ctx context.Context, c *config, db *store.DB, starter file.Starter, log *zap.Logger, reg prometheus.Registerer) (func(), error) {
	if c.File.Root == "" && len(c.File.Sites) == 0 {
		return func() {}, nil
	}
	sites := make([]file.Site, len(c.File.Sites))
	for i, s := range c.File.Sites {
		sites[i] = file.Site{Code: s.Code, Dir: s.Dir, Inbox: s.Inbox, Work: s.Work, Outbox: s.Outbox, Archive: s.Archive, Errors: s.Error}
	}
	var fac []string
	if c.ACK.Facility != "" {
		fac = []string{c.ACK.Facility}
	}
	svc, err := file.NewService(file.ServiceOptions{
		Root: c.File.Root, Sites: sites, Starter: starter, Senders: db,
		Settle: c.File.Settle, Poll: c.File.Poll, MaxFileSize: c.File.MaxFileSize, Workers: c.File.Workers,
		Process: fileProcessOptions(c),
		ACK:     file.ACKFileOptions{Application: []string{c.ACK.Application}, Facility: fac},
		Logger:  log, Registerer: reg,
	})
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := svc.Run(ctx); err != nil {
			log.Error("drop folders stopped", zap.Error(err))
		}
	}()
	log.Info("drop folders watched", zap.String("root", c.File.Root), zap.Int("sites", len(sites)))
	return func() { cancel(); wg.Wait() }, nil
}
