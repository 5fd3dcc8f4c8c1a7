package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/ingest/validate"
)

// config is everything vaxgate can be told, from flags, VAXGATE_* environment variables and a YAML
// file, in that order of precedence over the defaults.
type config struct {
	DatabaseURL string `mapstructure:"database_url"`
	DataDir     string `mapstructure:"data_dir"`
	Log         struct {
		Level  string `mapstructure:"level"`
		Format string `mapstructure:"format"` // json or console
	} `mapstructure:"log"`
	MLLP struct {
		Addr           string        `mapstructure:"addr"`
		MaxMessageSize int           `mapstructure:"max_message_size"`
		ReadTimeout    time.Duration `mapstructure:"read_timeout"`
		IdleTimeout    time.Duration `mapstructure:"idle_timeout"`
		WriteTimeout   time.Duration `mapstructure:"write_timeout"`
		MaxConnections int           `mapstructure:"max_connections"`
		MaxInFlight    int           `mapstructure:"max_in_flight"`
		TLS            struct {
			Cert     string `mapstructure:"cert"`
			Key      string `mapstructure:"key"`
			ClientCA string `mapstructure:"client_ca"`
		} `mapstructure:"tls"`
	} `mapstructure:"mllp"`
	HTTP struct {
		Addr      string `mapstructure:"addr"`
		PublicURL string `mapstructure:"public_url"`
		Pprof     bool   `mapstructure:"pprof"`
	} `mapstructure:"http"`
	SOAP struct {
		MaxMessageSize int `mapstructure:"max_message_size"`
	} `mapstructure:"soap"`
	ACK struct {
		Application string `mapstructure:"application"`
		Facility    string `mapstructure:"facility"`
		AcceptedERR bool   `mapstructure:"accepted_err"`
		WarningsAE  bool   `mapstructure:"warnings_ae"`
	} `mapstructure:"ack"`
	SharingPolicy string `mapstructure:"sharing_policy"`
	Validation    struct {
		Severity map[string]string            `mapstructure:"severity"`
		Senders  map[string]map[string]string `mapstructure:"senders"`
	} `mapstructure:"validation"`
	Store struct {
		MaxBatch int           `mapstructure:"max_batch"`
		MaxDelay time.Duration `mapstructure:"max_delay"`
		Shards   int           `mapstructure:"shards"`
	} `mapstructure:"store"`
	File fileConfig `mapstructure:"file"` // drop folders (ingest/file); see filedrop.go
	SMTP struct {
		Addr     string `mapstructure:"addr"`
		From     string `mapstructure:"from"`
		Username string `mapstructure:"username"`
		Password string `mapstructure:"password"`
	} `mapstructure:"smtp"`
}

func setDefaults(v *viper.Viper) {
	v.SetDefault("database_url", "")
	v.SetDefault("data_dir", "./data")
	v.SetDefault("log.level", "info")
	v.SetDefault("log.format", "json")
	v.SetDefault("mllp.addr", ":2575")
	v.SetDefault("mllp.max_message_size", 4<<20)
	v.SetDefault("mllp.read_timeout", 30*time.Second)
	v.SetDefault("mllp.idle_timeout", 5*time.Minute)
	v.SetDefault("mllp.write_timeout", 30*time.Second)
	v.SetDefault("mllp.max_connections", 1024)
	v.SetDefault("mllp.max_in_flight", 64)
	v.SetDefault("mllp.tls.cert", "")
	v.SetDefault("mllp.tls.key", "")
	v.SetDefault("mllp.tls.client_ca", "")
	v.SetDefault("http.addr", ":8080")
	v.SetDefault("http.public_url", "")
	v.SetDefault("http.pprof", false)
	v.SetDefault("soap.max_message_size", 4<<20)
	v.SetDefault("ack.application", "vaxgate")
	v.SetDefault("ack.facility", "")
	v.SetDefault("ack.accepted_err", ack.DefaultPolicy.AcceptedERR)
	v.SetDefault("ack.warnings_ae", ack.DefaultPolicy.WarningsAE)
	v.SetDefault("sharing_policy", "ma")
	v.SetDefault("store.max_batch", 256)
	v.SetDefault("store.max_delay", 2*time.Millisecond)
	v.SetDefault("store.shards", 2)
	setFileDefaults(v)
	v.SetDefault("smtp.addr", "")
	v.SetDefault("smtp.from", "")
	v.SetDefault("smtp.username", "")
	v.SetDefault("smtp.password", "")
}

// flagKeys maps command-line flags to configuration keys.
var flagKeys = map[string]string{
	"database-url": "database_url",
	"data-dir":     "data_dir",
	"log-level":    "log.level",
	"log-format":   "log.format",
	"mllp-addr":    "mllp.addr",
	"http-addr":    "http.addr",
}

// addCommonFlags adds the flags every database-using command shares.
func addCommonFlags(fs *pflag.FlagSet) {
	fs.String("database-url", "", "PostgreSQL URL (env VAXGATE_DATABASE_URL); empty starts a private PostgreSQL under --data-dir")
	fs.String("data-dir", "", "directory of the private PostgreSQL (env VAXGATE_DATA_DIR, default ./data)")
	fs.String("log-level", "", "debug, info, warn or error (env VAXGATE_LOG_LEVEL)")
	fs.String("log-format", "", "json or console (env VAXGATE_LOG_FORMAT)")
}

// loadConfig reads the configuration in viper's order: flag > env > file > default.
func loadConfig(cmd *cobra.Command) (*config, error) {
	v := viper.New()
	setDefaults(v)
	v.SetEnvPrefix("VAXGATE")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	file := ""
	if f := cmd.Flag("config"); f != nil {
		file = f.Value.String()
	}
	if file == "" {
		file = v.GetString("config")
	}
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("read config %s: %w", file, err)
		}
	}
	var bindErr error
	bind := func(f *pflag.Flag) {
		if key, ok := flagKeys[f.Name]; ok && bindErr == nil {
			bindErr = v.BindPFlag(key, f)
		}
	}
	cmd.Flags().VisitAll(bind)
	cmd.PersistentFlags().VisitAll(bind)
	cmd.InheritedFlags().VisitAll(bind)
	if bindErr != nil {
		return nil, fmt.Errorf("bind flags: %w", bindErr)
	}
	var c config
	if err := v.Unmarshal(&c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if c.SharingPolicy != "ma" && c.SharingPolicy != "pd1" {
		return nil, fmt.Errorf("config: sharing_policy must be \"ma\" or \"pd1\", not %q", c.SharingPolicy)
	}
	return &c, nil
}

// newLogger builds the zap logger: JSON for production, console for people.
func newLogger(c *config) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(c.Log.Level)); err != nil {
		return nil, fmt.Errorf("config: log.level %q: %w", c.Log.Level, err)
	}
	var zc zap.Config
	switch c.Log.Format {
	case "json":
		zc = zap.NewProductionConfig()
	case "console":
		zc = zap.NewDevelopmentConfig()
	default:
		return nil, fmt.Errorf("config: log.format must be json or console, not %q", c.Log.Format)
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.OutputPaths = []string{"stderr"}
	return zc.Build()
}

// severities converts configured severity names into the validator's form.
func severities(m map[string]string) (map[string]ack.Severity, error) {
	out := make(map[string]ack.Severity, len(m))
	for rule, s := range m {
		sev, err := validate.ParseSeverity(s)
		if err != nil {
			return nil, fmt.Errorf("config: validation severity for rule %s: %w", rule, err)
		}
		out[rule] = sev
	}
	return out, nil
}
