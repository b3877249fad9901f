// Package winchester embeds the Winchester engine in a program: it loads a
// winchester.yaml (Load, Read, Config), assembles the definitions it
// points at, the store and the trigger manager (Open, Engine), and builds
// pipeline workers over them. The commands under cmd/ are thin users of
// this package; a program of your own can do the same in a few lines.
//
// Precedence of settings: flag > environment (WINCHESTER_DATABASE_URL) >
// file > default. Only the commands read flags and the environment; they
// apply them with Config.Override.
package winchester
