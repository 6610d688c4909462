// quantbot-perplexity: llama.cpp's llama-perplexity, with its log drained before exit.
//
// llama.cpp's tools log through an asynchronous worker thread that is never joined at exit
// (llama.cpp issue 22142), so the last lines -- the final PPL and the KL-divergence
// statistics quantbot reads -- are sometimes lost. This entry point calls the same
// llama_perplexity() as the upstream main and then joins the log worker.

struct common_log;
common_log * common_log_main();
void common_log_pause(common_log * log);
int llama_perplexity(int argc, char ** argv);

int main(int argc, char ** argv) {
    const int rc = llama_perplexity(argc, argv);
    common_log_pause(common_log_main());  // drains the queue, then stops the worker
    return rc;
}
