package main

// The plugins shipped with the binary register themselves.
import _ "corriere/plugins/all"
