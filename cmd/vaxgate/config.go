package main

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/ingest/validate"
	"github.com/vaxgate/vaxgate/store"
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
	Runtime runtimeConfig `mapstructure:"runtime"` // the garbage collector: see gcsettings.go
	MLLP    struct {
		Addr           string        `mapstructure:"addr"`
		MaxMessageSize int           `mapstructure:"max_message_size"`
		ReadTimeout    time.Duration `mapstructure:"read_timeout"`
		IdleTimeout    time.Duration `mapstructure:"idle_timeout"`
		WriteTimeout   time.Duration `mapstructure:"write_timeout"`
		MaxConnections int           `mapstructure:"max_connections"`
		MaxInFlight    int           `mapstructure:"max_in_flight"`
		// Hostile senders (issue 14): fair connection slots, handshake, junk, memory, revocation.
		MaxConnectionsPerSource int           `mapstructure:"max_connections_per_source"`
		ReservedConnections     int           `mapstructure:"reserved_connections"`
		HandshakeTimeout        time.Duration `mapstructure:"handshake_timeout"`
		MaxJunkFrames           int           `mapstructure:"max_junk_frames"`
		SenderTTL               time.Duration `mapstructure:"sender_ttl"`
		MaxInFlightBytes        int           `mapstructure:"max_in_flight_bytes"`
		MaxMemory               int64         `mapstructure:"max_memory"`
		ProcessingFactor        float64       `mapstructure:"processing_factor"`
		ACKReserve              int           `mapstructure:"ack_reserve"`
		TLS                     struct {
			Cert     string `mapstructure:"cert"`
			Key      string `mapstructure:"key"`
			ClientCA string `mapstructure:"client_ca"`
		} `mapstructure:"tls"`
	} `mapstructure:"mllp"`
	HTTP struct {
		Addr      string `mapstructure:"addr"`
		PublicURL string `mapstructure:"public_url"`
		Pprof     bool   `mapstructure:"pprof"`
		// Slow and idle clients (issue 14.4).
		ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
		ReadTimeout       time.Duration `mapstructure:"read_timeout"`
		WriteTimeout      time.Duration `mapstructure:"write_timeout"`
		IdleTimeout       time.Duration `mapstructure:"idle_timeout"`
		MaxConnections    int           `mapstructure:"max_connections"`
	} `mapstructure:"http"`
	// Shutdown budgets (issue 14.9): the listeners first, then the writer's flush, each its own.
	Shutdown struct {
		Timeout       time.Duration `mapstructure:"timeout"`
		WriterTimeout time.Duration `mapstructure:"writer_timeout"`
	} `mapstructure:"shutdown"`
	SOAP struct {
		MaxMessageSize int           `mapstructure:"max_message_size"`
		MultiMessage   bool          `mapstructure:"multi_message"`
		RetryAfter     time.Duration `mapstructure:"retry_after"`
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
	// Charset: how bytes that are not UTF-8 are read in messages that declare UTF-8 or nothing.
	Charset struct {
		Fallback string            `mapstructure:"fallback"`
		Senders  map[string]string `mapstructure:"senders"` // site code -> fallback
	} `mapstructure:"charset"`
	// Limits on what one message may hold (validate.Options).
	Limits struct {
		MaxSegments    int `mapstructure:"max_segments"`
		MaxRepetitions int `mapstructure:"max_repetitions"`
		MaxFindings    int `mapstructure:"max_findings"`
	} `mapstructure:"limits"`
	Store struct {
		MaxBatch int           `mapstructure:"max_batch"`
		MaxDelay time.Duration `mapstructure:"max_delay"`
		Shards   int           `mapstructure:"shards"`
		// OutageWait: how long a message is held unanswered while the database is unavailable.
		OutageWait time.Duration `mapstructure:"outage_wait"`
	} `mapstructure:"store"`
	File fileConfig `mapstructure:"file"` // drop folders (ingest/file); see filedrop.go
	SMTP struct {
		Addr     string `mapstructure:"addr"`
		From     string `mapstructure:"from"`
		Username string `mapstructure:"username"`
		Password string `mapstructure:"password"`
		Dir      string `mapstructure:"dir"` // mail drop folder, used when addr is empty
	} `mapstructure:"smtp"`
	Registry struct {
		Name               string `mapstructure:"name"`
		HelpDesk           string `mapstructure:"help_desk"`
		InvitationTemplate string `mapstructure:"invitation_template"` // file
		FirstAdminUsername string `mapstructure:"first_admin_username"`
		FirstAdminEmail    string `mapstructure:"first_admin_email"`
	} `mapstructure:"registry"`
	Report struct {
		Plan              string        `mapstructure:"plan"`               // certification test plan YAML; empty: the built-in one
		SummarizeInterval time.Duration `mapstructure:"summarize_interval"` // serve summarizes recent messages this often; 0: never
	} `mapstructure:"report"`
}

func setDefaults(v *viper.Viper) {
	v.SetDefault("database_url", "")
	v.SetDefault("data_dir", "./data")
	v.SetDefault("log.level", "info")
	v.SetDefault("log.format", "json")
	v.SetDefault("runtime.gc_percent", defaultGCPercent)
	v.SetDefault("runtime.memory_limit", defaultMemoryLimit)
	v.SetDefault("mllp.addr", ":2575")
	v.SetDefault("mllp.max_message_size", 4<<20)
	v.SetDefault("mllp.read_timeout", 30*time.Second)
	v.SetDefault("mllp.idle_timeout", 5*time.Minute)
	v.SetDefault("mllp.write_timeout", 30*time.Second)
	v.SetDefault("mllp.max_connections", 1024)
	v.SetDefault("mllp.max_in_flight", 64)
	v.SetDefault("mllp.max_connections_per_source", 32)
	v.SetDefault("mllp.reserved_connections", 256)
	v.SetDefault("mllp.handshake_timeout", 10*time.Second)
	v.SetDefault("mllp.max_junk_frames", 3)
	v.SetDefault("mllp.sender_ttl", 5*time.Second)
	v.SetDefault("mllp.max_in_flight_bytes", 0)
	v.SetDefault("mllp.max_memory", 1<<30)
	v.SetDefault("mllp.processing_factor", 8.0)
	v.SetDefault("mllp.ack_reserve", 32<<10)
	v.SetDefault("mllp.tls.cert", "")
	v.SetDefault("mllp.tls.key", "")
	v.SetDefault("mllp.tls.client_ca", "")
	v.SetDefault("http.addr", ":8080")
	v.SetDefault("http.public_url", "")
	v.SetDefault("http.pprof", false)
	v.SetDefault("http.read_header_timeout", 10*time.Second)
	v.SetDefault("http.read_timeout", time.Minute)
	v.SetDefault("http.write_timeout", 2*time.Minute)
	v.SetDefault("http.idle_timeout", time.Minute)
	v.SetDefault("http.max_connections", 512)
	v.SetDefault("shutdown.timeout", 30*time.Second)
	v.SetDefault("shutdown.writer_timeout", 30*time.Second)
	v.SetDefault("soap.max_message_size", 4<<20)
	v.SetDefault("soap.multi_message", false)
	v.SetDefault("soap.retry_after", 30*time.Second)
	v.SetDefault("ack.application", "vaxgate")
	v.SetDefault("ack.facility", "")
	v.SetDefault("ack.accepted_err", ack.DefaultPolicy.AcceptedERR)
	v.SetDefault("ack.warnings_ae", ack.DefaultPolicy.WarningsAE)
	v.SetDefault("sharing_policy", "ma")
	v.SetDefault("charset.fallback", validate.DefaultCharset)
	v.SetDefault("limits.max_segments", validate.DefaultMaxSegments)
	v.SetDefault("limits.max_repetitions", validate.DefaultMaxRepetitions)
	v.SetDefault("limits.max_findings", validate.DefaultMaxFindings)
	v.SetDefault("store.max_batch", store.DefaultMaxBatch)
	v.SetDefault("store.max_delay", store.DefaultMaxDelay)
	v.SetDefault("store.shards", store.DefaultShards)
	v.SetDefault("store.outage_wait", 30*time.Second)
	setFileDefaults(v)
	v.SetDefault("smtp.addr", "")
	v.SetDefault("smtp.from", "")
	v.SetDefault("smtp.username", "")
	v.SetDefault("smtp.password", "")
	v.SetDefault("smtp.dir", "")
	v.SetDefault("registry.name", "the immunization registry")
	v.SetDefault("registry.help_desk", "")
	v.SetDefault("registry.invitation_template", "")
	v.SetDefault("registry.first_admin_username", "registrar")
	v.SetDefault("registry.first_admin_email", "registrar@registry.invalid")
	v.SetDefault("report.plan", "")
	v.SetDefault("report.summarize_interval", time.Minute)
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
	// Exact: a key the configuration does not know (a typo, a setting of another version) stops
	// the command, rather than being silently ignored.
	if err := v.UnmarshalExact(&c); err != nil {
		return nil, fmt.Errorf("config%s: %s", inFile(file), oneLine(err))
	}
	// Each record of a batch holds up to three advisory locks until its batch commits: 1,024
	// records and two shards stay well inside PostgreSQL's default lock table (6,400 entries).
	if c.Store.MaxBatch < 1 || c.Store.MaxBatch > maxBatchLimit {
		return nil, fmt.Errorf("config%s: store.max_batch must be between 1 and %d, not %d", inFile(file), maxBatchLimit, c.Store.MaxBatch)
	}
	if c.SharingPolicy != "ma" && c.SharingPolicy != "pd1" {
		return nil, fmt.Errorf("config: sharing_policy must be \"ma\" or \"pd1\", not %q", c.SharingPolicy)
	}
	return &c, nil
}

// maxBatchLimit is the largest store.max_batch.
const maxBatchLimit = 1024

func inFile(file string) string {
	if file == "" {
		return ""
	}
	return " " + file
}

var invalidKeys = regexp.MustCompile(`^'([^']*)' has invalid keys: (.*)$`)

// oneLine folds the decoder's multi-line error report into one line.
func oneLine(err error) string {
	msg := strings.TrimSpace(err.Error())
	msg = strings.TrimPrefix(msg, "decoding failed due to the following error(s):")
	var parts []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "*"))
		if m := invalidKeys.FindStringSubmatch(l); m != nil {
			var keys []string
			for _, k := range strings.Split(m[2], ",") {
				if k = strings.TrimSpace(k); m[1] != "" {
					k = m[1] + "." + k
				}
				keys = append(keys, k)
			}
			l = "unknown key " + strings.Join(keys, ", ")
		}
		if l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
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
		zc.Development = false
		zc.DisableStacktrace = true // people read it: a warning is a line, not a stack
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

// inputOptions sets the validator's fallback character sets and message limits from the
// configuration (charset.*, limits.*); validate.New checks them.
func inputOptions(c *config, o *validate.Options) {
	o.Charset = c.Charset.Fallback
	o.SenderCharset = c.Charset.Senders
	o.MaxSegments = c.Limits.MaxSegments
	o.MaxRepetitions = c.Limits.MaxRepetitions
	o.MaxFindings = c.Limits.MaxFindings
}
