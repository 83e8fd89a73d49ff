#!/usr/bin/env node
// Installs the system packages the tests use, where this machine lets us (root + apt).
// Each test that needs one still checks for it and skips loudly, naming the reason, when it is absent.
// Later issues add their packages here (wireguard-tools, a container engine, chromium).
const WANTED = [];
if (WANTED.length === 0) process.exit(0);
