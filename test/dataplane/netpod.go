package dataplane

import "github.com/capstanmesh/capstan/internal/netpod"

// The harness's pods, processes and apps live in internal/netpod (the
// playground of `make run` runs them too); these names keep the scenarios
// reading as before.

// Pods and processes.
type (
	Network   = netpod.Network
	Netns     = netpod.Netns
	Proc      = netpod.Proc
	Volumes   = netpod.Volumes
	Container = netpod.Container
)

// Apps.
type (
	AppConfig     = netpod.AppConfig
	Report        = netpod.Report
	CallResult    = netpod.CallResult
	LoadResult    = netpod.LoadResult
	ServerOptions = netpod.ServerOptions
)

// Names, app modes and special paths.
const (
	Prefix            = netpod.Prefix
	InitContainerName = netpod.InitContainerName
	AppEnv            = netpod.AppEnv
	HTTPServer        = netpod.HTTPServer
	GRPCServer        = netpod.GRPCServer
	HTTPClient        = netpod.HTTPClient
	GRPCClient        = netpod.GRPCClient
	HTTPLoad          = netpod.HTTPLoad
	HTTPStream        = netpod.HTTPStream
	XFCCHeader        = netpod.XFCCHeader
	StreamPath        = netpod.StreamPath
	StatusPathPrefix  = netpod.StatusPathPrefix
	HoldPath          = netpod.HoldPath
	SleepPathPrefix   = netpod.SleepPathPrefix
	AppPodHeader      = netpod.AppPodHeader
	TCPServer         = netpod.TCPServer
	TCPClient         = netpod.TCPClient
	WSClient          = netpod.WSClient
	WebSocketPath     = netpod.WebSocketPath
	FailPathPrefix    = netpod.FailPathPrefix
	ResetPathPrefix   = netpod.ResetPathPrefix
	GRPCStream        = netpod.GRPCStream
	H2RefuseServer    = netpod.H2RefuseServer
	RefuseEvery       = netpod.RefuseEvery
)

// Functions.
var (
	NewNetwork       = netpod.NewNetwork
	Sweep            = netpod.Sweep
	StartProc        = netpod.StartProc
	FindContainer    = netpod.FindContainer
	PrepareContainer = netpod.PrepareContainer
	RunInit          = netpod.RunInit
	EnvoyCommand     = netpod.EnvoyCommand
	AppCommand       = netpod.AppCommand
	ParseCalls       = netpod.ParseCalls
	RunApp           = netpod.RunApp
	AppCertName      = netpod.AppCertName
)
