%% Savina big for Erlang: W workers; each sends N pings, one at a time, to
%% a neighbor picked at random (Park-Miller, seeded by the worker's index);
%% a ping is answered with a pong, and each pong triggers the next ping. A
%% worker whose N pongs came back tells the sink; the sink tells main once
%% all W are done. Usage: big REPS W N. Counts 2*W*N messages per rep.
-module(big).
-export([main/1]).

main(Args) ->
    [Reps, W, N] = bench_util:ints(Args),
    S = bench_util:median_secs(Reps, fun() -> rep(W, N) end),
    bench_util:report(big, 2 * W * N / S, "msgs/s"),
    halt().

rep(W, N) ->
    Main = self(),
    Sink = spawn(fun() -> sink(Main, W) end),
    Workers = [spawn(fun() -> worker_init(Sink, I, N) end) || I <- lists:seq(0, W - 1)],
    Peers = list_to_tuple(Workers),
    [X ! {peers, Peers} || X <- Workers],
    S = bench_util:time_secs(fun() ->
        [X ! start || X <- Workers],
        receive done -> ok end
    end),
    [exit(X, kill) || X <- Workers],
    S.

worker_init(Sink, I, N) ->
    receive {peers, Peers} -> worker(Sink, Peers, I + 1, 0, N) end.

worker(Sink, Peers, Seed, Sent, N) ->
    receive
        start ->
            Seed2 = ping_random(Peers, Seed),
            worker(Sink, Peers, Seed2, Sent + 1, N);
        {ping, From} ->
            From ! pong,
            worker(Sink, Peers, Seed, Sent, N);
        pong when Sent =:= N ->
            Sink ! done,
            worker(Sink, Peers, Seed, Sent, N);
        pong ->
            Seed2 = ping_random(Peers, Seed),
            worker(Sink, Peers, Seed2, Sent + 1, N)
    end.

ping_random(Peers, Seed) ->
    Seed2 = Seed * 48271 rem 2147483647,
    element(Seed2 rem tuple_size(Peers) + 1, Peers) ! {ping, self()},
    Seed2.

sink(Main, 0) -> Main ! done;
sink(Main, Left) -> receive done -> sink(Main, Left - 1) end.
