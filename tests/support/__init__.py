"""What the tests share that is not a fixture: helpers, live servers, peers and clients."""
